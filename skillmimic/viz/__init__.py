"""Drawing: the court and goal markers (court), offscreen pictures (render), play.py's window (viewer), frames to
video (video), and matplotlib for the figures of results (plots). Draws what the model and the tasks describe,
knowing no environment, task or script."""
