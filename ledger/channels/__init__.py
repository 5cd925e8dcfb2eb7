"""What sending over more than one channel keeps: whether a recipient's next channel goes
(``fallback``), and credentials a channel's provider issues for a while (``tokens``)."""
