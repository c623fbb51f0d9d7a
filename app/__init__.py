"""encurta: a self-hosted URL shortener with click analytics, built as a modular monolith."""
