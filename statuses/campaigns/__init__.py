"""Campaigns (DESIGN §16): one proactive send to up to 100,000 recipients, followed together.

``create`` checks the recipients and stores the campaign (the API answers then);
``materialise`` (the worker) turns the stored recipients into messages and send tasks in
batches; ``lifecycle`` pauses, resumes, cancels and finishes campaigns. Counts by status are
kept by the status write path itself (``statuses.campaign_counts``).
"""
