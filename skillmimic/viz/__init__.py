"""Drawing: the court and goal markers (court), offscreen pictures (render), play.py's window (viewer), and frames
to video (video). Draws what the model and the tasks describe, knowing no environment, task or script."""
