-- An invite may name its invitee: then only the account with that email (lowercased by
-- the application) can accept it.
ALTER TABLE invites ADD COLUMN email TEXT;
