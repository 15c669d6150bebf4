"""Subjects, their templates, and the vector index that searches them."""
