"""The OpenAI-compatible HTTP server and the serving benchmark."""
