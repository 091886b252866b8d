"""Learning from labelled documents: reading them (`labelled`), training the reranker (`train`)
and the dictionary spotter's mention scorer (`mention_train`), and the metrics of
`mmel evaluate`, training and the benchmarks (`evaluate`)."""
