"""`sdtui serve`: the engine service over HTTP (own API, AUTOMATIC1111 subset, Hugging Face)."""
