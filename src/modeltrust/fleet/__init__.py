"""Fleet scanning: many targets, each unique file judged once (see README, "Fleet")."""
