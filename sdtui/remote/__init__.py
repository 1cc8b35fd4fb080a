"""Clients for engines elsewhere: an sdtui server, an AUTOMATIC1111-compatible server,
Hugging Face Inference Providers and Endpoints."""
