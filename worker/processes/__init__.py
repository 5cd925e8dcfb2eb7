"""The processes ``loa worker`` runs and keeps alive: the supervisor, its children
(``python -m worker.processes.child KIND``) and the liveness of their claims."""
