"""What `manage.py evaluate_answers` needs beyond ask(): the question file, the corpus
ingested into throw-away rows, one asked question read back as the employee saw it, the
whole-word answer match and the metrics."""
