"""Text messages to borrowers' mobile phones, through an SMS gateway."""
