DROP TABLE support_feedback;
DROP TABLE support_attachments;
DROP TABLE support_messages;
DROP TABLE support_tickets;
