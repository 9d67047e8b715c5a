"""What a generation's ``confidence`` (:data:`contract.schema.CONFIDENCE`) is called.

Rule: a confidence in [0, 1] is labelled "resembles strongly" from :data:`STRONG`,
"resembles weakly" from :data:`WEAK` and "no clear resemblance" below; these
thresholds and words are defined here once, for the attribution that writes the
column (:func:`attribution.confidence.confidence_label`), the statements, the
dashboard and the policy rule that discounts weak attributions.
"""

from __future__ import annotations

#: Confidence from which a generation "resembles strongly" its credited clips
#: (their mix has cosine >= 0.894 to it). Provisional, like every default.
STRONG: float = 0.8
#: Confidence from which it "resembles weakly" (cosine >= 0.707); below, it
#: resembles its credited clips too little for the credit to be more than a guess.
WEAK: float = 0.5

LABEL_STRONG = "resembles strongly"
LABEL_WEAK = "resembles weakly"
LABEL_NONE = "no clear resemblance"
