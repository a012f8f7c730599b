"""Model families, one module each. The registry imports them on first use."""
