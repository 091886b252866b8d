"""Corpus-scale linking: every core of one machine (`workers`, `mmel link --workers N`) or a Ray
cluster (`ray_link`, `mmel link --ray`)."""
