"""Encoders (text, face) and FAISS indexes: build, save, load, search. Reads entities from `kb`.

- `indexer.text`: `TextEncoder` protocol, `TransformerTextEncoder` (bundled all-MiniLM-L6-v2 by
  default), `HashingTextEncoder` (deterministic test/debug encoder), `load_text_encoder(id)`.
- `indexer.dense`: `DenseIndex` (flat / HNSW / IVF-PQ with a manifest), `build_text_index`,
  `load_text_index` (`<kb_dir>/text.faiss` + `text.json`).
- `indexer.ray_index`: `build_text_index_ray`, the same text index built by a Ray Data pipeline
  (`mmel kb index --ray`; the optional `[ray]` extra).
- `indexer.faces`: `load_image`, `FaceEncoder` protocol, `DlibFaceEncoder`, `FaceIndex`,
  `build_face_index`, `load_face_index` (`<kb_dir>/faces.faiss` + `faces.json`).

Modules are imported on demand (torch, faiss and dlib are heavy), so nothing is re-exported here.
"""
