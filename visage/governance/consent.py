"""Consent records: defined in :mod:`visage.gallery.consent` (the gallery, which governance
sits above, needs them); re-exported here, where the governance code and the doors look."""

from visage.gallery.consent import ConsentRecord as ConsentRecord
from visage.gallery.consent import LegalBasis as LegalBasis
from visage.gallery.consent import consent_in_force as consent_in_force
from visage.gallery.consent import normalise_purpose as normalise_purpose
