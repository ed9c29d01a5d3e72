"""Auto-captioning: caption jobs on the GPU queue leave suggestions a person reviews."""
