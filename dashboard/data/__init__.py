"""The dashboard's data layer, split by who asks: every number a page shows comes from here.

- :mod:`dashboard.data.store` — the cached engine, :func:`~dashboard.data.store.cached_reader`,
  the store-problem guard, money formatting;
- :mod:`dashboard.data.session` — logins, sessions and the role checks;
- :mod:`dashboard.data.public` — anyone: the catalogue, the batches, the chain head;
- :mod:`dashboard.data.creator` — the logged-in creator's own rows;
- :mod:`dashboard.data.staff` — admin and economist: whole batches, payout files, verify;
- :mod:`dashboard.data.policy_lab` — the policy lab's re-allocation of a posted period.

Rule: a creator-scoped function takes **no** creator argument (it reads the
login's creator_id); whole-batch functions refuse without a staff login.
"""
