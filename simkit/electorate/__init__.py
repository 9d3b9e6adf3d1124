"""The electorate: stations, registers and regions (synthetic or from CSV), and real station returns read through mappings and presets."""
