"""The built-in calibration text: a few hundred tokens of plain English prose."""

SAMPLE = """\
The river town woke slowly on the first cold morning of autumn. Fishermen pulled their boats
onto the gravel, and the baker on the corner opened his shutters to let out the smell of warm
bread. Children walked to school in pairs, arguing about a football match that had ended in a
draw the night before. At the library, an old man read the newspaper from the first page to
the last, as he had done every day for thirty years.

Scientists measure the temperature of the ocean with floating instruments that drift with the
currents and dive to a depth of two thousand metres. Every ten days each float rises to the
surface, sends its readings to a satellite, and sinks again. Thousands of these floats now
cover the world's oceans, and their records show that the water is slowly getting warmer.

To make a simple tomato soup, soften an onion in olive oil, add two cloves of garlic, then a
kilogram of ripe tomatoes cut into quarters. Let it simmer for twenty minutes, season with salt
and pepper, and blend until smooth. Serve it hot with a spoonful of cream and fresh basil.

The committee met on Tuesday to discuss the budget for the coming year. Several members asked
why the cost of maintaining the roads had risen so quickly, and the treasurer explained that
the price of asphalt and fuel had both increased. After a long debate, they agreed to delay the
new sports hall and to repair the bridge over the canal first.

A computer program is a list of instructions that a machine follows one after another. Some
programs sort numbers, others draw pictures or translate text from one language into another.
Good programs are written so that other people can read them, test them, and change them
without breaking what already works.

In the spring, the hills above the village turn green, and sheep graze between the stone
walls. Walkers follow the old path along the ridge, stopping to look at the sea in the
distance. On clear days one can see the lighthouse on the island and the ferry crossing the bay.
"""
