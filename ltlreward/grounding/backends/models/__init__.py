"""Open-vocabulary model grounders (Grounding DINO / OWLv2 + SAM2, SAM3, VLM yes/no questions, composites)
through transformers' own classes. Everything heavy (torch, transformers) is imported lazily by the backend
modules; importing this package costs nothing."""
