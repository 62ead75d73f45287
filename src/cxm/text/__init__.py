"""Offline text analytics: sentiment, emotion and themes (pure functions + shipped model files)."""
