"""Action destinations: vendors described as settings, actions with typed fields, and presets."""
