"""A campaign's life as operators drive it: planning and launch (with the second-process
pipeline), pause, resume and cancel, the embedded worker and the demo, and what a
campaign waits for."""
