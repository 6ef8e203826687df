"""What `manage.py evaluate_retrieval` needs beyond retrieve(): the BEIR data set, the
throw-away rows it is ingested into, the fusion variants and the metrics."""
