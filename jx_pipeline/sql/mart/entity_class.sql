-- The classes of geographic entity the marts speak of: 山水林田湖草 (mountains, water, forest, farmland, lakes,
-- grassland: the natural-resources family) and the built ones. A code list the platform styles its layers by.
create table mart.entity_class__next (
    entity_class  text primary key,
    class_zh      text    not null,
    title_zh      text    not null,
    title_en      text    not null,
    family        text    not null,
    entity_types  text[]  not null,
    colour        text    not null
);
insert into mart.entity_class__next values
    ('mountain',   '山',   '山地',     'Hills and mountains',              'natural', '{hill}',          '#8c6d31'),
    ('water',      '水',   '河流水面', 'Rivers, canals and ponds',         'natural', '{river,pond}',    '#3182bd'),
    ('forest',     '林',   '林地',     'Forest land',                      'natural', '{forest}',        '#31a354'),
    ('farmland',   '田',   '耕地',     'Farmland',                         'natural', '{farmland}',      '#e6c229'),
    ('lake',       '湖',   '湖泊',     'Lakes',                            'natural', '{lake}',          '#9ecae1'),
    ('grassland',  '草',   '草地',     'Grassland',                        'natural', '{grassland}',     '#a1d99b'),
    ('road',       '路',   '道路',     'Roads',                            'built',   '{road}',          '#636363'),
    ('building',   '房',   '建筑',     'Buildings',                        'built',   '{building}',      '#de2d26'),
    ('door_plate', '门牌', '门牌地址', 'Door plates (standard addresses)', 'built',   '{address_point}', '#756bb1');

comment on table mart.entity_class__next is '地理实体分类 — Entity classes. The classes of geographic entity: 山水林田湖草 (the natural-resources family) and the built classes, with the core entity types each one covers and the colour of the map previews.';
comment on column mart.entity_class__next.entity_class is '实体分类代码 — Class code (mountain, water, forest, farmland, lake, grassland, road, building, door_plate); other marts name classes by it.';
comment on column mart.entity_class__next.class_zh is '分类字 — The class as 山水林田湖草 writes it (山, 水, 林, 田, 湖, 草), or 路/房/门牌 for built classes.';
comment on column mart.entity_class__next.title_zh is '中文名称 — Chinese title of the class.';
comment on column mart.entity_class__next.title_en is '英文名称 — English title of the class.';
comment on column mart.entity_class__next.family is '类别 — natural (山水林田湖草) or built.';
comment on column mart.entity_class__next.entity_types is '核心实体类型 — The core.geo_entity types in this class (e.g. river and pond are both 水).';
comment on column mart.entity_class__next.colour is '图例颜色 — Hex colour used for this class in the map previews.';
