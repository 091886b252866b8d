"""The linking pipeline: mentions, candidates, reranking, visual matching, OT joint disambiguation.

The stages sit here, one module each, and `linker.pipeline.Linker` runs them:
`document` (JSON in and out) → `mentions` (spotting raw text) → `candidates` (+ `profiles`) →
`features` → `reranker` → `calibration` (confidence, NIL); `visual` + `ot` for faces and the joint
step; `config` holds one frozen config per component. Around them:

- `linker.training`: labelled data, reranker and mention-scorer training, metrics;
- `linker.corpus`: linking a corpus on every core (`workers`) or on a Ray cluster (`ray_link`);
- `linker.fronts`: the ways in for people and programs: file-level entry points of the CLI
  (`api`), the HTTP server, the HTML view, the spaCy component and the demo.

Imports run one way: fronts → corpus, training → the stages.
"""
