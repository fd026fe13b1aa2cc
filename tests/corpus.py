"""Names of the shipped articles and a new article, shared by the tests."""

BIDEN = "biden-administration-new-sanctions-on-iran-over-arms-for-russia.txt"
DRONES = "white-house-says-iran-helping-russia-build-drone-factory.txt"
G7 = "g7-allies-warn-iran-over-ballistic-missiles-for-russia.txt"
US = "us-believes-iran-transferred-missiles-to-russia.txt"

# An article that is not in the shipped set, to add during a test.
NEW_ARTICLE = """Iran unveils new drone carrier in the Gulf

Published: 2024-03-01

Iran's navy unveiled a converted container ship on Friday that it says can launch drones far from home waters.

The vessel, renamed the Shahid Bagheri, carries a runway and hangars, state television reported.

Analysts in Washington said the ship showed how Tehran's drone programme had grown since Russia began buying Shahed drones for its war in Ukraine.

The U.S. Navy said it was monitoring the vessel and had seen no sign of an imminent deployment.
"""
