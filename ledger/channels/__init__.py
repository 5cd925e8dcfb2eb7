"""What sending over more than one channel keeps: credentials a channel's provider issues
for a while (``tokens``)."""
