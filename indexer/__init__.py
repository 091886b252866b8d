"""Encoders (text, face) and FAISS indexes: build, save, load, search. Reads entities from `kb`."""
