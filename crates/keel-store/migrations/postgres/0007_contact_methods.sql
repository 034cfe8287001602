-- How to reach a person (e-mail, SMS, phone, chat, webhook), as a JSON list
-- of {"kind", "address"}: notifications and escalations use them.
ALTER TABLE users ADD COLUMN contact_methods TEXT NOT NULL DEFAULT '[]';
