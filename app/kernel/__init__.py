"""Domain-free infrastructure any module may use; it knows no module by name."""
