"""Customer notifications: providers (email, SMS, push) and message templates."""
