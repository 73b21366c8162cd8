"""Hot spend state used by admission checks."""
