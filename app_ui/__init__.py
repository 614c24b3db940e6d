"""The UI layer the pages share: the app's runtime, the Account View, cached loaders, and the forms.

Pages (app_pages/) only draw; they read through `loaders` and act through returns_core. Nothing
here runs SQL (returns_core.store does) or talks to TikTok (returns_core does, through its
TikTok session).

- runtime: the database, the background syncs, the data version, secrets.toml
- navigation: where each page lives, for links and switches
- account_view: which accounts the user looks at (the sidebar's Account View)
- loaders: every read a page shows, typed and cached under the data version
- identity: who acts and what they may do
- filters: the returns filters, the paged returns table and its export (grid and Refunds)
- decisions: the one decision card (what, why, by when, decide on TikTok) and bulk decisions
- status_notes: move Status by hand, add a note, show the history
- widgets: small pieces those forms and lists share (a return's key, messages kept across a rerun, a pager)
- formatting: times in words
"""
