"""The linking pipeline: mentions, candidates, reranking, visual matching, OT joint disambiguation."""
