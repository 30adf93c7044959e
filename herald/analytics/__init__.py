"""Analytics computed in Python over the marts: A/B test results."""
