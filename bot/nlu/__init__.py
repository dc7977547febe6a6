"""Custom NLU components registered with Rasa's default recipe (config.yml's pipeline).

Importing the package changes nothing in Rasa: training, ``rasa test`` and the Rasa server load
the components alike; the server's changes to Rasa are installed by its entry point
(bot/server.py).
"""
