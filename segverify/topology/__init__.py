"""Reading topology files (YAML) into the model."""
