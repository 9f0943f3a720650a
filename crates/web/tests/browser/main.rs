//! The web app in headless Chromium against the real server on port 0: one test binary,
//! one module per page or concern, sharing the harness in `tests/support/`.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

#[path = "../support/browser.rs"]
mod harness;

mod accounts;
mod billing;
mod first_run;
mod generation;
mod history;
mod history_selection;
mod home;
mod layout;
mod listening;
mod settings;
mod studio;
mod voice_editing;
mod voices;
