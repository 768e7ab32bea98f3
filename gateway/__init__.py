"""Email ticketing gateway: mail to the support address becomes tickets, replies thread back."""
