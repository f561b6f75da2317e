"""The trainer dashboard (a hub service): cohort progress, risks, plots, exports, certificates, calibration."""
