"""China's obfuscated web-map coordinate systems: GCJ-02 (国测局) and BD-09 (Baidu), from and to CGCS2000.

CGCS2000 and WGS 84 differ by well under a metre here, so CGCS2000 longitudes/latitudes are used as WGS 84
input to the published GCJ-02 formula. Vectorised with numpy: whole columns convert at once.
"""

from __future__ import annotations

import numpy as np

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0


def _delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def cgcs2000_to_gcj02(lon, lat):
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_bd09(lon, lat):
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def cgcs2000_to(crs: str, lon, lat):
    """CGCS2000 lon/lat to the named system ('cgcs2000', 'gcj02', 'bd09')."""
    if crs == "cgcs2000":
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    glon, glat = cgcs2000_to_gcj02(lon, lat)
    return (glon, glat) if crs == "gcj02" else gcj02_to_bd09(glon, glat)


def bd09_to_gcj02(lon, lat):
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    x, y = lon - 0.0065, lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def gcj02_to_cgcs2000(lon, lat, iterations: int = 6):
    """Inverse of the GCJ-02 offset by fixed-point iteration (the offset varies slowly: each step gains ~5
    decimal places; 6 steps are far below a millimetre)."""
    glon, glat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(iterations):
        flon, flat = cgcs2000_to_gcj02(wlon, wlat)
        wlon, wlat = wlon - (flon - glon), wlat - (flat - glat)
    return wlon, wlat


def to_cgcs2000(crs: str, lon, lat):
    """Lon/lat in the named system ('cgcs2000', 'gcj02', 'bd09') to CGCS2000."""
    if crs == "cgcs2000":
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if crs == "bd09":  # the published closed form is off by up to ~0.15 m: refine it like the GCJ-02 inverse
        blon, blat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        lon, lat = bd09_to_gcj02(blon, blat)
        for _ in range(3):
            flon, flat = gcj02_to_bd09(lon, lat)
            lon, lat = lon - (flon - blon), lat - (flat - blat)
    return gcj02_to_cgcs2000(lon, lat)
