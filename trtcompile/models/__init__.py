"""Model sources: HF directories, GGUF files, built-in tiny random-weight configs."""
