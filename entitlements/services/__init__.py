"""Every write that changes the state of a request or an assignment.

``requests`` holds submission, cancellation and the start of scheduled requests;
``assignments`` holds delivery hand-off, removal, extension, expiry and loss of eligibility;
``delivery`` holds the connectors that grant and revoke resource roles.
"""
