"""Geographic entities and the door-plate gazetteer: what every record is linked to."""
