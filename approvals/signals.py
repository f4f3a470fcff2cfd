"""What the approval flow tells higher layers (notifications). Sent on commit."""

from django.dispatch import Signal

stage_opened = Signal()  # stage (RequestApprovalStage), approvers (list of users)
stage_escalated = Signal()  # stage, approvers (the escalation approvers)
stage_decided = Signal()  # stage (review_result, reviewed_by, justification set)
approval_revoked = Signal()  # revocation (ApprovalRevocation: approval, reason, outcome)
