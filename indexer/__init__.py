"""Encoders (text, face) and FAISS indexes: build, save, load, search. Reads entities from `kb`.

- `indexer.text`: `TextEncoder` protocol, `TransformerTextEncoder` (bundled all-MiniLM-L6-v2 by
  default), `HashingTextEncoder` (deterministic test/debug encoder), `load_text_encoder(id)`.
- `indexer.dense`: `DenseIndex` (flat / HNSW / IVF-PQ with a manifest), `build_text_index`,
  `load_text_index` (`<kb_dir>/text.faiss` + `text.json`).
- `indexer.ray_index`: `build_text_index_ray`, the same text index built by a Ray Data pipeline
  (`mmel kb index --ray`; the optional `[ray]` extra).
- `indexer.images`: `load_image`, `image_size`, the process-wide `DECODE_BUDGET` of pixels.
- `indexer.face_encoders`: `FaceEncoder` protocol, `DlibFaceEncoder`, `image_faces`;
  `indexer.face_transformer`: the paper's trainable face transformer (`mmel train-faces`).
- `indexer.faces`: `load_face_encoder`, `FaceIndex`, `build_face_index`, `load_face_index`
  (`<kb_dir>/faces.faiss` + `faces.json`).

Modules are imported on demand (torch, faiss and dlib are heavy), so nothing is re-exported here.
"""
