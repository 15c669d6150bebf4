"""Visage: self-hosted, privacy-by-design face recognition.

Visage recognises only people who consented (enrolled with a consent record and a
purpose); every other face is a bystander whose data lives for one frame and is
never stored. It never infers race, ethnicity, religion, gender, age or emotion.
"""

__version__ = "0.1.0"
