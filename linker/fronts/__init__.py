"""The ways in: file-level entry points of the CLI (`api`), the HTTP API (`server`), the HTML view
(`html`), the spaCy component (`spacy_component`) and `mmel demo` (`demo`)."""
