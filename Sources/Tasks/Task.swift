// Tasks: verifiable problem families, datasets and rule-based rewards. Plain Swift: never imports Autograd.
